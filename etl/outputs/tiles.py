"""Pre-render offline basemap tiles (XYZ, 256 px PNG, web mercator) from a bundle's streets.

The town-hall mode must work with no internet, so its basemap comes from the region's own data:
the street network arrays of the bundle (and its outline, and a ``water`` layer where one
exists) drawn with Pillow into ``<out_dir>/{z}/{x}/{y}.png``, served by the app as
``/tiles/<region>/{z}/{x}/{y}.png``. Tiles are drawn in metatiles (4 × 4 tiles, 2×
supersampled, so lines are anti-aliased and continuous across tile edges), then cut.

Bounded output:

* only tiles that cover the region (its outline, else its network) are considered;
* tiles with nothing on them outside the region are skipped (the app's map background,
  :data:`OUTSIDE`, shows through); tiles inside the region with no street are written once
  and hard-linked (``land.png``);
* the highest zoom levels are dropped until the count fits ``max_tiles``.

``metadata.json`` beside the tiles gives bounds, zooms, counts, background colour and
attribution for the app's tile layer. The folder is replaced atomically.

Settings
--------
MAX_TILES : int
    Default cap on the number of tiles of one region.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from PIL import Image, ImageDraw

from etl._errors import BundleError, ExportError
from etl.bundle.store import Bundle
from etl.outputs.render import street_segments

logger = logging.getLogger(__name__)

TILE_SIZE: Final[int] = 256
MAX_TILES: int = 20_000
META: Final[int] = 4  # metatile side, in tiles
SUPERSAMPLE: Final[int] = 2
MAX_ZOOM: Final[int] = 19

LAND: Final[str] = "#f3f1ec"
OUTSIDE: Final[str] = "#dedad3"
WATER: Final[str] = "#b8d3e6"
OUTLINE: Final[str] = "#6d6a64"

# Per street level (0 path, 1 minor, 2 medium, 3 major): (fill, casing) colours.
_COLOURS: Final[dict[int, tuple[str, str]]] = {
    0: ("#d9d2c5", "#d9d2c5"),
    1: ("#ffffff", "#cbc6bd"),
    2: ("#ffffff", "#b3ada3"),
    3: ("#f6e3c0", "#cdb386"),
}


def build_tiles(
    bundle: Bundle,
    out_dir: str | Path,
    *,
    zooms: Iterable[int] = range(10, 16),
    max_tiles: int | None = None,
) -> int:
    """Render the bundle's basemap tiles into ``out_dir/{z}/{x}/{y}.png``.

    Parameters
    ----------
    bundle
        The opened region bundle (needs a ``network/<mode>.npz``).
    out_dir
        Tile folder, replaced atomically (e.g. ``geodata/<region>/tiles``).
    zooms
        Zoom levels to render (0-19).
    max_tiles
        Cap on the tiles written (default :data:`MAX_TILES`); the highest zooms are dropped
        until the estimate fits.

    Returns
    -------
    int
        Number of tiles written.

    Raises
    ------
    ExportError
        For zoom levels out of range or none at all.
    BundleError
        If the bundle has no street network.
    """
    t0 = time.perf_counter()
    levels = sorted({int(z) for z in zooms})
    if not levels or levels[0] < 0 or levels[-1] > MAX_ZOOM:
        msg = f"zoom levels must be between 0 and {MAX_ZOOM}, got {list(zooms)!r}"
        raise ExportError(msg)
    segments = street_segments(bundle, "EPSG:4326")
    if segments is None:
        msg = f"{bundle.path}: no street network to draw tiles from; rebuild the bundle"
        raise BundleError(msg)
    lonlat, level = segments
    region = _region(bundle)
    water = _layer_union(bundle, "water")
    bounds = _bounds(lonlat, region)
    cap = MAX_TILES if max_tiles is None else int(max_tiles)
    kept = list(levels)
    while len(kept) > 1 and sum(_count(bounds, z) for z in kept) > cap:
        kept.pop()
    if kept != levels:
        logger.info("build_tiles: zooms %s dropped to stay under %s tiles",
                    ", ".join(str(z) for z in levels if z not in kept), f"{cap:,}")  # fmt: skip

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    written, plain, skipped, budget = 0, 0, 0, cap
    try:
        land_file = staging / "land.png"
        Image.new("RGB", (TILE_SIZE, TILE_SIZE), LAND).save(land_file, optimize=True)
        for z in kept:
            n_w, n_p, n_s = _render_zoom(z, lonlat, level, region, water, bounds, staging,
                                         land_file, budget)  # fmt: skip
            written, plain, skipped = written + n_w, plain + n_p, skipped + n_s
            budget -= n_w
            logger.info("build_tiles: zoom %d: %s tiles (%s plain), %s empty skipped", z,
                        f"{n_w:,}", f"{n_p:,}", f"{n_s:,}")  # fmt: skip
            if budget <= 0:
                logger.info("build_tiles: reached %s tiles; stopping at zoom %d", f"{cap:,}", z)
                kept = [k for k in kept if k <= z]
                break
        size = sum(p.stat().st_size for p in staging.rglob("*.png") if p.stat().st_nlink == 1)
        size += land_file.stat().st_size
        meta = _metadata(bundle, bounds, kept, written, plain, size)
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        (staging / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _swap(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("build_tiles: %s tiles (%s plain), %s skipped, %.1f MB, zooms %d-%d, "
                "in %.1f s -> %s", f"{written:,}", f"{plain:,}", f"{skipped:,}", size / 1e6,
                kept[0], kept[-1],
                time.perf_counter() - t0, out_dir)  # fmt: skip
    return written


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return a tile's (west, south, east, north) in degrees."""
    n = 2.0**z
    west, east = x / n * 360.0 - 180.0, (x + 1) / n * 360.0 - 180.0
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
    return west, south, east, north


def tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """Return the tiles (x0, y0, x1, y1), inclusive, covering (west, south, east, north)."""
    west, south, east, north = bounds
    n = 2**z
    px0, py0 = _pixels(np.array([west]), np.array([north]), z)
    px1, py1 = _pixels(np.array([east]), np.array([south]), z)
    clamp = lambda v: int(min(max(v, 0), n - 1))  # noqa: E731
    return (clamp(px0[0] // TILE_SIZE), clamp(py0[0] // TILE_SIZE),
            clamp(px1[0] // TILE_SIZE), clamp(py1[0] // TILE_SIZE))  # fmt: skip


# --------------------------------------------------------------------------------------------
# drawing


def _render_zoom(z: int, lonlat: np.ndarray, level: np.ndarray, region: Any, water: Any,
                 bounds: tuple[float, float, float, float], out: Path, land_file: Path,
                 budget: int) -> tuple[int, int, int]:  # fmt: skip
    """Render one zoom level; return (tiles written, plain land tiles, empty tiles skipped)."""
    px, py = _pixels(lonlat[:, :, 0].ravel(), lonlat[:, :, 1].ravel(), z)
    seg = np.stack([px.reshape(-1, 2), py.reshape(-1, 2)], axis=-1)  # (n, 2 points, xy)
    show = level >= _min_level(z)
    seg, lev = seg[show], level[show]
    lo, hi = seg.min(axis=1), seg.max(axis=1)
    region_px = _project_geom(region, z) if region is not None else None
    water_px = _project_geom(water, z) if water is not None else None
    widths = _widths(z)
    x0, y0, x1, y1 = tile_range(bounds, z)
    written = plain = skipped = 0
    ss = SUPERSAMPLE
    for mx in range(x0, x1 + 1, META):
        for my in range(y0, y1 + 1, META):
            if written >= budget:
                return written, plain, skipped
            ox, oy = mx * TILE_SIZE, my * TILE_SIZE
            side = META * TILE_SIZE
            pad = max(widths.values()) + 2
            sel = ((hi[:, 0] >= ox - pad) & (lo[:, 0] <= ox + side + pad)
                   & (hi[:, 1] >= oy - pad) & (lo[:, 1] <= oy + side + pad))  # fmt: skip
            box = shapely.box(ox, oy, ox + side, oy + side)
            touches_region = region_px is not None and region_px.intersects(box)
            if not sel.any() and not touches_region:
                skipped += sum(1 for tx in range(mx, min(mx + META, x1 + 1))
                               for ty in range(my, min(my + META, y1 + 1)))  # fmt: skip
                continue
            ground = OUTSIDE if region_px is not None else LAND
            img = Image.new("RGB", (side * ss, side * ss), ground)
            draw = ImageDraw.Draw(img)
            offset = np.array([ox, oy], dtype=float)
            if region_px is not None:
                _fill(draw, region_px, box, offset, ss, LAND, OUTSIDE)
            if water_px is not None:
                _fill(draw, water_px, box, offset, ss, WATER, None)
            _draw_segments(draw, (seg[sel] - offset) * ss, lev[sel], widths, ss, z)
            if region_px is not None and touches_region:
                _outline(draw, region_px, box, offset, ss, width=max(1, round(widths[2] * 0.6)))
            img = img.reduce(ss)  # box filter: anti-aliasing
            pal = img.quantize(colors=64, method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.NONE)  # fmt: skip
            for tx in range(mx, min(mx + META, x1 + 1)):
                for ty in range(my, min(my + META, y1 + 1)):
                    crop = ((tx - mx) * TILE_SIZE, (ty - my) * TILE_SIZE,
                            (tx - mx + 1) * TILE_SIZE, (ty - my + 1) * TILE_SIZE)  # fmt: skip
                    tile = img.crop(crop)
                    uniform = all(a == b for a, b in tile.getextrema())
                    colour = tile.getpixel((0, 0)) if uniform else None
                    if colour == _rgb(OUTSIDE):
                        skipped += 1
                        continue
                    path = out / str(z) / str(tx) / f"{ty}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    written += 1
                    if colour == _rgb(LAND):
                        _link(land_file, path)
                        plain += 1
                        continue
                    pal.crop(crop).save(path)
    return written, plain, skipped


def _draw_segments(draw: ImageDraw.ImageDraw, seg: np.ndarray, lev: np.ndarray,
                   widths: dict[int, float], ss: int, z: int) -> None:  # fmt: skip
    """Casings first (from zoom 13), then fills, minor levels below major ones."""
    passes = []
    if z >= 13:
        passes += [(k, True) for k in (1, 2, 3)]
    passes += [(k, False) for k in (0, 1, 2, 3)]
    for k, casing in passes:
        sel = lev == k
        if not sel.any():
            continue
        fill, edge = _COLOURS[k]
        if z < 13:
            fill = {0: "#d9d2c5", 1: "#c9c4bb", 2: "#b5aea3", 3: "#d6bb8a"}[k]
        w = widths[k] * ss + (2.0 * ss if casing else 0.0)
        width = max(1, round(w))
        colour = edge if casing else fill
        for (ax_, ay), (bx, by) in seg[sel].tolist():
            draw.line((ax_, ay, bx, by), fill=colour, width=width)
        if width >= 3:  # round joins: a disc on every node of the level
            r = width / 2.0
            nodes = np.unique(np.round(seg[sel].reshape(-1, 2), 1), axis=0)
            for cx, cy in nodes.tolist():
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def _fill(draw: ImageDraw.ImageDraw, geom: Any, box: Any, offset: np.ndarray, ss: int,
          colour: str, hole: str | None) -> None:  # fmt: skip
    clipped = geom.intersection(box.buffer(4))
    for poly in shapely.get_parts(clipped):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        ring = (np.asarray(poly.exterior.coords) - offset) * ss
        if len(ring) >= 3:
            draw.polygon([tuple(p) for p in ring], fill=colour)
        if hole is None:
            continue
        for interior in poly.interiors:
            ring = (np.asarray(interior.coords) - offset) * ss
            if len(ring) >= 3:
                draw.polygon([tuple(p) for p in ring], fill=hole)


def _outline(draw: ImageDraw.ImageDraw, geom: Any, box: Any, offset: np.ndarray, ss: int, *,
             width: int) -> None:  # fmt: skip
    lines = shapely.intersection(geom.boundary, box.buffer(4))
    for part in shapely.get_parts(lines):
        coords = (np.asarray(part.coords) - offset) * ss
        if len(coords) >= 2:
            draw.line([tuple(p) for p in coords], fill=OUTLINE, width=width * ss, joint="curve")


_WIDTHS: Final[dict[int, tuple[float, float, float, float]]] = {
    10: (0.5, 0.5, 0.8, 1.4), 11: (0.5, 0.6, 1.0, 1.8), 12: (0.6, 0.8, 1.3, 2.4),
    13: (0.7, 1.2, 2.0, 3.2), 14: (0.8, 2.0, 3.2, 4.8), 15: (1.0, 3.2, 4.8, 6.5),
    16: (1.2, 5.0, 7.0, 9.0),
}  # fmt: skip


def _widths(z: int) -> dict[int, float]:
    """Line widths in output pixels per street level at zoom ``z``."""
    if z in _WIDTHS:
        return dict(enumerate(_WIDTHS[z]))
    if z < 10:
        return dict(enumerate(_WIDTHS[10]))
    grow = 1.5 ** (z - 16)
    return {k: min(v * grow, 16.0) for k, v in enumerate(_WIDTHS[16])}


def _min_level(z: int) -> int:
    """Smallest street level drawn at a zoom: paths from 14, minor streets from 11."""
    if z >= 14:
        return 0
    if z >= 11:
        return 1
    return 2


# --------------------------------------------------------------------------------------------
# geometry


def _pixels(lon: np.ndarray, lat: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Global pixel coordinates of web mercator at zoom ``z``."""
    n = TILE_SIZE * 2.0**z
    lat = np.clip(np.asarray(lat, dtype=float), -85.05112878, 85.05112878)
    x = (np.asarray(lon, dtype=float) + 180.0) / 360.0 * n
    s = np.sin(np.radians(lat))
    y = (0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)) * n
    return x, y


def _project_geom(geom: Any, z: int) -> Any:
    return shapely.transform(geom, lambda c: np.column_stack(_pixels(c[:, 0], c[:, 1], z)))


def _region(bundle: Bundle) -> Any:
    return _layer_union(bundle, "region")


def _layer_union(bundle: Bundle, name: str) -> Any:
    if name not in bundle.layer_names:
        return None
    frame = bundle.read_layer(name)
    if not hasattr(frame, "geometry") or len(frame) == 0:
        return None
    geom = shapely.union_all(frame.to_crs("EPSG:4326").geometry.to_numpy())
    return None if geom.is_empty else shapely.make_valid(geom)


def _bounds(lonlat: np.ndarray, region: Any) -> tuple[float, float, float, float]:
    if region is not None:
        west, south, east, north = region.bounds
    else:
        west, south = lonlat[:, :, 0].min(), lonlat[:, :, 1].min()
        east, north = lonlat[:, :, 0].max(), lonlat[:, :, 1].max()
    # include the street network (it extends a buffer beyond the outline)
    west, south = min(west, lonlat[:, :, 0].min()), min(south, lonlat[:, :, 1].min())
    east, north = max(east, lonlat[:, :, 0].max()), max(north, lonlat[:, :, 1].max())
    return float(west), float(south), float(east), float(north)


def _count(bounds: tuple[float, float, float, float], z: int) -> int:
    x0, y0, x1, y1 = tile_range(bounds, z)
    return (x1 - x0 + 1) * (y1 - y0 + 1)


# --------------------------------------------------------------------------------------------
# files


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _swap(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` in place of ``out_dir`` (the old folder is removed afterwards)."""
    old = None
    if out_dir.exists() or out_dir.is_symlink():
        old = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _metadata(bundle: Bundle, bounds: tuple[float, float, float, float], zooms: list[int],
              written: int, plain: int, size: int) -> dict[str, Any]:  # fmt: skip
    m = bundle.manifest
    credits = " ".join(f"{r.get('source', '')} {r.get('licence', '')}" for r in m.get("inputs", []))
    osm = "openstreetmap" in credits.lower() or "odbl" in credits.lower()
    attribution = "Streets: " + (
        "© OpenStreetMap contributors (ODbL)" if osm else "the region's own data"
    )
    if m.get("fictional"):
        attribution = "FICTIONAL DATA · " + attribution
    west, south, east, north = bounds
    return {
        "region": m.get("region"),
        "fictional": bool(m.get("fictional")),
        "build_id": m.get("build_id"),
        "format": "png",
        "tile_size": TILE_SIZE,
        "scheme": "xyz",
        "url": "{z}/{x}/{y}.png",
        "minzoom": zooms[0],
        "maxzoom": zooms[-1],
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2],
        "tiles": written,
        "plain_tiles": plain,
        "bytes": size,
        "background": OUTSIDE,
        "land": LAND,
        "attribution": attribution,
    }
